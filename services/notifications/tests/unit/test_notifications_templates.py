from datetime import UTC, datetime

from notifications.adapters.templates import Templates
from notifications.domain.dates import french_datetime


def test_the_activation_email_is_french_and_its_html_is_escaped():
    email = Templates().render(
        "activation", first_name="<b>Zoé</b>", last_name="N'Diaye", link="https://x/activation?token=abc&x=1",
        expires_at_fr="27 novembre 2026 à 10h30",
    )
    assert email.subject == "Activez votre espace adhérent"
    assert "Bonjour <b>Zoé</b> N'Diaye" in email.text
    assert "&lt;b&gt;Zoé&lt;/b&gt; N&#39;Diaye" in email.html and "<b>Zoé" not in email.html
    assert "https://x/activation?token=abc&amp;x=1" in email.html
    assert "https://x/activation?token=abc&x=1" in email.text


def test_dates_are_written_in_paris_time_the_french_way():
    assert french_datetime(datetime(2026, 11, 26, 14, 5, tzinfo=UTC)) == "26 novembre 2026 à 15h05"
    assert french_datetime(datetime(2026, 7, 1, 9, 0, tzinfo=UTC)) == "1 juillet 2026 à 11h00"

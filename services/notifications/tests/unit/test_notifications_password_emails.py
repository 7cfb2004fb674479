from notifications.adapters.templates import Templates


def test_the_password_reset_email_is_french_and_carries_the_link_escaped_in_html():
    link = "https://espace.example/mot-de-passe/reinitialisation?token=abc&x=1"
    email = Templates().render(
        "password_reset", first_name="Zoé", last_name="N'Diaye", link=link, expires_at_fr="27 novembre 2026 à 10h30"
    )
    assert email.subject == "Réinitialisez votre mot de passe"
    assert "Bonjour Zoé N'Diaye" in email.text
    assert link in email.text
    assert "https://espace.example/mot-de-passe/reinitialisation?token=abc&amp;x=1" in email.html
    assert "jusqu'au 27 novembre 2026 à 10h30" in email.text
    assert "N&#39;Diaye" in email.html


def test_the_password_changed_alert_says_how_and_what_to_do_if_it_was_not_you():
    templates = Templates()
    common = dict(first_name="Zoé", last_name="Martin", changed_at_fr="26 novembre 2026 à 15h05",
                  forgotten_link="https://espace.example/mot-de-passe/oubli")
    by_reset = templates.render("password_changed", by_reset=True, **common)
    by_change = templates.render("password_changed", by_reset=False, **common)
    assert by_reset.subject == by_change.subject == "Votre mot de passe a été modifié"
    assert "modifié le 26 novembre 2026 à 15h05 à partir d'un lien de réinitialisation" in by_reset.text
    assert "déconnecté de tous vos appareils" in by_reset.text
    assert "déconnecté de vos autres appareils" in by_change.text
    for email in (by_reset, by_change):
        assert "Si ce n'est pas vous" in email.text and "https://espace.example/mot-de-passe/oubli" in email.text
        assert "token" not in email.text

"""The e-mails for an existing account and a change of address: French, escaped, links right."""

from notifications.adapters.templates import Templates
from notifications.service_layer.emails import mask_email


def test_the_account_exists_email_points_to_the_password_reset():
    email = Templates().render(
        "account_exists", first_name="Zoé", last_name="<N'Diaye>", reset_link="https://x/mot-de-passe/oubli"
    )
    assert email.subject == "Vous avez déjà un espace adhérent"
    assert "https://x/mot-de-passe/oubli" in email.text and "https://x/mot-de-passe/oubli" in email.html
    assert "Bonjour Zoé <N'Diaye>" in email.text
    assert "&lt;N&#39;Diaye&gt;" in email.html and "<N'Diaye>" not in email.html


def test_the_confirmation_goes_with_its_link_and_the_alert_without_it():
    link = "https://x/email/confirmation?token=abc&x=1"
    confirmation = Templates().render(
        "email_change_confirmation", first_name="Zoé", last_name="Martin", link=link, expires_at_fr="27 novembre 2026 à 10h30"
    )
    assert confirmation.subject == "Confirmez votre nouvelle adresse e-mail"
    assert link in confirmation.text and "https://x/email/confirmation?token=abc&amp;x=1" in confirmation.html
    assert "27 novembre 2026 à 10h30" in confirmation.text

    alert = Templates().render(
        "email_change_alert", first_name="Zoé", last_name="Martin", new_email_masked="c***n@example.net",
        requested_at_fr="26 novembre 2026 à 10h30", reset_link="https://x/mot-de-passe/oubli",
    )
    assert alert.subject == "Demande de changement de l'adresse e-mail de votre espace"
    assert "c***n@example.net" in alert.text and "c***n@example.net" in alert.html
    assert "token" not in alert.text and "token" not in alert.html

    changed = Templates().render("email_changed", first_name="Zoé", last_name="Martin", changed_at_fr="26 novembre 2026 à 11h00")
    assert changed.subject == "Votre nouvelle adresse e-mail est enregistrée"


def test_an_address_is_masked_but_recognisable():
    assert mask_email("camille.martin@example.net") == "c***n@example.net"
    assert mask_email("zo@example.net") == "z***@example.net"

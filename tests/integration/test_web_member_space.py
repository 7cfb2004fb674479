"""The member space in a real browser (Debian's Chromium through Playwright), on the real
system through the gateway: the seed's registration flow end to end, every form error at its
field, expired links, forgotten password, log-out, the keyboard alone, JavaScript off, axe-core
on every page, nothing loaded from outside 127.0.0.1, CSRF and cookie flags."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.integration.conftest import PASSWORD, activation_token
from tests.integration.test_account_creation import register_and_activate
from tests.integration.test_registration_and_profile import identity_db as _identity_db
from tests.integration.test_registration_and_profile import link_token, wait_for_subject
from tests.integration.web_browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, Guard, Pages, axe_source

NEW_PASSWORD = "Autre-Mot2passe!"
RESET_SUBJECT = "Réinitialisez votre mot de passe"


def identity_db(system, query: str, *args) -> str:
    """One statement in identity's database, from another thread: Playwright's sync API keeps an
    event loop running in this one, where asyncio.run cannot start another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_identity_db, system, query, *args).result()


@pytest.fixture(scope="session")
def browser() -> Iterator:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def pages() -> Pages:
    return Pages(axe_source())


def open_context(browser, system, **options):
    context = browser.new_context(base_url=system.gateway_url, viewport=DESKTOP, locale="fr-FR", **options)
    context.set_default_timeout(20_000)
    guard = Guard()
    guard.attach(context)
    return context, guard


@pytest.fixture
def page(browser, system) -> Iterator[Page]:
    context, guard = open_context(browser, system)
    page = context.new_page()
    guard.watch(page)
    try:
        yield page
    finally:
        context.close()
    guard.check()


def label(page: Page, text: str):
    """The field whose label is `text` (followed by the "*" of a required field or not)."""
    return page.get_by_label(re.compile("^" + re.escape(text) + r"( \*)?$"))


def fill_registration(page: Page, member, **overrides) -> None:
    values = {
        "Numéro d'adhérent": member.membership_number,
        "Nom": member.last_name,
        "Prénom": member.first_name,
        "Date de naissance": member.birth_date.strftime("%d/%m/%Y"),
        "Adresse e-mail": member.email,
        "Confirmation de l'adresse e-mail": member.email,
        "Mot de passe": PASSWORD,
        "Confirmation du mot de passe": PASSWORD,
    } | overrides
    for name, value in values.items():
        label(page, name).fill(value)


def log_in(page: Page, identifier: str, password: str = PASSWORD) -> None:
    page.goto("/connexion")
    label(page, "Numéro d'adhérent ou de contrat").fill(identifier)
    label(page, "Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()


def mail_link(message, marker: str) -> str:
    return marker + link_token(message, marker)


def session_cookie(context) -> dict:
    [cookie] = [c for c in context.cookies() if c["name"].endswith("espace_session")]
    return cookie


# -- the seed's flow ----------------------------------------------------------------------------


def test_the_seed_flow_from_creer_mon_espace_to_the_dashboard(page: Page, pages: Pages, system, registry, mailbox):
    member = registry.take()
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Bienvenue dans votre espace adhérent")
    expect(page.get_by_role("link", name="Espace personnel")).to_have_attribute("href", "/connexion")
    pages.check(page, "accueil")
    page.get_by_role("link", name="Créer mon espace (première connexion)").click()

    expect(page).to_have_url(re.compile(r"/inscription$"))
    expect(page.get_by_text("* Saisie obligatoire")).to_be_visible()
    expect(page.get_by_text("8 caractères minimum (doit contenir au moins 1 minuscule, 1 majuscule, 1 chiffre et 1 "
                            "caractère spécial)")).to_be_visible()
    expect(page.get_by_text("JJ/MM/AAAA")).to_be_visible()
    expect(page.get_by_role("link", name="ANNULER")).to_be_visible()
    expect(page.get_by_role("checkbox", name=re.compile("e-courriers"))).to_be_checked()  # subscribed by default
    expect(page.get_by_text(re.compile("Profil › Communication"))).to_be_visible()
    terms = page.get_by_role("link", name=re.compile("conditions générales d'utilisation"))
    expect(terms).to_contain_text("version 2026-01")
    pages.check(page, "inscription")

    fill_registration(page, member)
    page.get_by_role("checkbox", name=re.compile("J'ai lu et j'accepte")).check()
    page.get_by_role("button", name="VALIDER").click()
    expect(page).to_have_url(re.compile(r"/inscription/email-envoye$"))
    expect(page.get_by_text("dans les 24 heures")).to_be_visible()
    pages.check(page, "email-envoye")

    [message] = mailbox.wait_for(member.email)
    page.goto(f"/activation?token={activation_token(message)}")
    # The token is consumed and out of the address bar (and out of any Referer or history).
    expect(page).to_have_url(re.compile(r"/connexion\?etat=active$"))
    expect(page.get_by_role("status")).to_contain_text("Votre espace est activé")
    pages.check(page, "connexion")

    log_in(page, member.membership_number)
    expect(page).to_have_url(re.compile(r"/espace$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Mon espace")
    expect(page.get_by_text(f"Bonjour {member.first_name} {member.last_name}")).to_be_visible()
    for service in ("Mes garanties", "Mes remboursements", "Dépôt de factures", "Mes documents",
                    "Carte de tiers payant", "Recherche d'un professionnel de santé conventionné",
                    "Messages à votre centre de gestion", "Mon profil"):
        expect(page.locator("main").get_by_role("link", name=service, exact=True)).to_be_visible()
    pages.check(page, "tableau-de-bord")
    # The tokens are out of reach of page JavaScript.
    assert page.evaluate("document.cookie") == ""

    page.get_by_role("button", name="Se déconnecter").click()
    expect(page).to_have_url(re.compile(r"/connexion\?etat=deconnecte$"))
    expect(page.get_by_role("status")).to_contain_text("Vous êtes déconnecté")
    page.goto("/espace")
    expect(page).to_have_url(re.compile(r"/connexion$"))

    log_in(page, member.contract_number)
    expect(page).to_have_url(re.compile(r"/espace$"))
    expect(page.get_by_text(f"Bonjour {member.first_name}")).to_be_visible()


def test_every_form_error_is_shown_at_its_field_and_in_the_summary(page: Page, pages: Pages, registry):
    page.goto("/inscription")
    page.get_by_role("button", name="VALIDER").click()
    summary = page.get_by_role("alert").filter(has_text="Le formulaire contient")
    expect(summary).to_be_visible()
    for field_id in ("membership_number", "last_name", "first_name", "birth_date", "email", "email_confirmation",
                     "password", "password_confirmation", "terms_accepted"):
        field = page.locator(f"#{field_id}")
        expect(field).to_have_attribute("aria-invalid", "true")
        # The message is linked to its field for screen readers, and the summary links to the field.
        described = field.get_attribute("aria-describedby") or ""
        assert f"{field_id}-error" in described.split(), field_id
        expect(page.locator(f"#{field_id}-error")).to_contain_text("Erreur")
        expect(summary.locator(f"a[href='#{field_id}']")).to_have_count(1)
    expect(page.locator("#membership_number-error")).to_contain_text("Ce champ est obligatoire.")
    expect(page.locator("#terms_accepted-error")).to_contain_text("Vous devez accepter les conditions générales")
    pages.check(page, "inscription-erreurs")

    # The API's own refusals, in French, each at its field; what was typed stays (passwords excepted).
    member = registry.take()
    fill_registration(page, member, **{"Date de naissance": "31/02/1990", "Confirmation de l'adresse e-mail": "autre@example.org"})
    page.get_by_role("checkbox", name=re.compile("J'ai lu et j'accepte")).check()
    page.get_by_role("button", name="VALIDER").click()
    expect(page.locator("#birth_date-error")).to_contain_text("JJ/MM/AAAA")
    expect(page.locator("#birth_date")).to_have_value("31/02/1990")
    expect(page.locator("#last_name")).to_have_value(member.last_name)

    fill_registration(page, member, **{"Mot de passe": "court", "Confirmation du mot de passe": "autre"})
    page.get_by_role("checkbox", name=re.compile("J'ai lu et j'accepte")).check()
    page.get_by_role("button", name="VALIDER").click()
    expect(page.locator("#password-error")).to_be_visible()
    expect(page.locator("#password_confirmation-error")).to_contain_text("ne sont pas identiques")
    fill_registration(page, member, **{"Confirmation de l'adresse e-mail": "autre@example.org"})
    page.get_by_role("checkbox", name=re.compile("J'ai lu et j'accepte")).check()
    page.get_by_role("button", name="VALIDER").click()
    expect(page.locator("#email_confirmation-error")).to_contain_text("ne sont pas identiques")
    # With JavaScript on, the summary takes the focus, and its links move it to the field.
    expect(summary).to_be_focused()
    summary.locator("a[href='#email_confirmation']").click()
    expect(page.locator("#email_confirmation")).to_be_focused()

    page.goto("/connexion")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.locator("#identifier-error")).to_contain_text("Ce champ est obligatoire.")
    log_in(page, member.membership_number, "Faux-mot2passe!")
    expect(page.get_by_role("alert")).to_contain_text("Identifiant ou mot de passe incorrect.")
    pages.check(page, "connexion-erreur")


def test_an_expired_link_offers_a_new_one_in_one_click_and_the_new_one_works(page: Page, pages: Pages, system, registry, mailbox):
    member = registry.take()
    page.goto("/inscription")
    fill_registration(page, member)
    page.get_by_role("checkbox", name=re.compile("J'ai lu et j'accepte")).check()
    page.get_by_role("button", name="VALIDER").click()
    [first] = mailbox.wait_for(member.email)
    token = activation_token(first)
    identity_db(system, "UPDATE activation_tokens SET expires_at = now() - interval '1 minute' WHERE token_hash = $1",
                hashlib.sha256(token.encode()).digest())

    page.goto(f"/activation?token={token}")
    expect(page).to_have_url(re.compile(r"/activation$"))
    expect(page.get_by_role("alert")).to_contain_text("Lien expiré")
    pages.check(page, "activation-lien-expire")
    page.get_by_role("button", name="Recevoir un nouveau lien d'activation").click()
    expect(page).to_have_url(re.compile(r"/inscription/email-envoye"))
    second = mailbox.wait_for(member.email, count=2)[-1]
    assert activation_token(second) != token

    page.goto(f"/activation?token={activation_token(second)}")
    expect(page).to_have_url(re.compile(r"/connexion\?etat=active$"))
    log_in(page, member.membership_number)
    expect(page).to_have_url(re.compile(r"/espace$"))


def test_forgotten_password_from_the_log_in_page_to_the_new_password(page: Page, pages: Pages, gateway, registry, mailbox):
    member = registry.take()
    register_and_activate(gateway, mailbox, member)
    page.goto("/connexion")
    page.get_by_role("link", name="Mot de passe oublié ?").click()
    pages.check(page, "mot-de-passe-oubli")
    label(page, "Numéro d'adhérent ou de contrat").fill(member.membership_number)
    page.get_by_role("button", name="VALIDER").click()
    expect(page.get_by_role("status")).to_contain_text("valable 30 minutes")

    [message] = wait_for_subject(mailbox, member.email, RESET_SUBJECT)
    page.goto(mail_link(message, "/mot-de-passe/reinitialisation?token="))
    expect(page).to_have_url(re.compile(r"/mot-de-passe/reinitialisation$"))
    pages.check(page, "mot-de-passe-reinitialisation")
    label(page, "Nouveau mot de passe").fill("faible")
    label(page, "Confirmation du mot de passe").fill("faible")
    page.get_by_role("button", name="VALIDER").click()
    expect(page.locator("#password-error")).to_be_visible()
    label(page, "Nouveau mot de passe").fill(NEW_PASSWORD)
    label(page, "Confirmation du mot de passe").fill(NEW_PASSWORD)
    page.get_by_role("button", name="VALIDER").click()
    expect(page).to_have_url(re.compile(r"/connexion\?etat=mot-de-passe-modifie$"))
    log_in(page, member.membership_number, NEW_PASSWORD)
    expect(page).to_have_url(re.compile(r"/espace$"))


def test_the_registration_with_the_keyboard_alone(page: Page, registry, mailbox):
    member = registry.take()
    page.goto("/")
    for _ in range(15):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Créer mon espace (première connexion)":
            break
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/inscription$"))

    typed = {
        "membership_number": member.membership_number, "last_name": member.last_name, "first_name": member.first_name,
        "birth_date": member.birth_date.strftime("%d/%m/%Y"), "email": member.email,
        "email_confirmation": member.email, "password": PASSWORD, "password_confirmation": PASSWORD,
    }
    order = [*typed, "terms_accepted"]
    focused: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        current = page.evaluate("document.activeElement.id")
        if current in typed and current not in focused:
            page.keyboard.type(typed[current])
        if current == "terms_accepted":
            page.keyboard.press("Space")
        if current and current in order and current not in focused:
            focused.append(current)
        if current == "terms_accepted":
            break
    # The focus goes through the fields in the order they are read.
    assert focused == order
    expect(page.locator("#terms_accepted")).to_be_checked()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "VALIDER":
            break
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/inscription/email-envoye$"))
    mailbox.wait_for(member.email)


def test_the_whole_flow_with_javascript_off(browser, system, registry, mailbox, pages: Pages):
    context, guard = open_context(browser, system, java_script_enabled=False)
    try:
        page = context.new_page()
        member = registry.take()
        page.goto("/")
        page.get_by_role("link", name="Créer mon espace (première connexion)").click()
        page.get_by_role("button", name="VALIDER").click()  # errors come from the server, not from scripts
        expect(page.locator("#membership_number-error")).to_contain_text("Ce champ est obligatoire.")
        fill_registration(page, member)
        page.get_by_role("checkbox", name=re.compile("J'ai lu et j'accepte")).check()
        page.get_by_role("button", name="VALIDER").click()
        expect(page).to_have_url(re.compile(r"/inscription/email-envoye$"))
        [message] = mailbox.wait_for(member.email)
        page.goto(f"/activation?token={activation_token(message)}")
        expect(page).to_have_url(re.compile(r"/connexion\?etat=active$"))
        log_in(page, member.membership_number)
        expect(page).to_have_url(re.compile(r"/espace$"))
        page.goto("/profil/communication")
        page.get_by_role("checkbox", name=re.compile("Alertes remboursement")).uncheck()
        page.get_by_role("button", name="Enregistrer mes préférences").click()
        expect(page.get_by_role("status")).to_contain_text("Vos préférences sont enregistrées.")
        expect(page.get_by_role("checkbox", name=re.compile("Alertes remboursement"))).not_to_be_checked()
        page.get_by_role("button", name="Se déconnecter").click()
        expect(page).to_have_url(re.compile(r"/connexion\?etat=deconnecte$"))
    finally:
        context.close()
    guard.check()


# -- the space ----------------------------------------------------------------------------------


def test_profile_communication_terms_and_log_out_everywhere(browser, page: Page, pages: Pages, system, gateway, registry, mailbox):
    member = registry.take()
    register_and_activate(gateway, mailbox, member)
    log_in(page, member.membership_number)
    expect(page).to_have_url(re.compile(r"/espace$"))

    page.goto("/profil")
    expect(page.get_by_text(member.contract_number)).to_be_visible()
    label(page, "Numéro et voie").fill("12 rue des Lilas")
    label(page, "Code postal").fill("690")
    label(page, "Ville").fill("Lyon")
    page.get_by_role("button", name="Enregistrer mes coordonnées").click()
    expect(page.locator("#postal_address-postal_code-error")).to_contain_text("5 chiffres")
    pages.check(page, "profil-erreur")
    label(page, "Code postal").fill("69003")
    page.get_by_role("button", name="Enregistrer mes coordonnées").click()
    expect(page.get_by_role("status")).to_contain_text("Vos coordonnées sont enregistrées.")
    expect(label(page, "Ville")).to_have_value("Lyon")
    pages.check(page, "profil")

    page.get_by_role("link", name=re.compile("Profil › Communication")).click()
    expect(page.get_by_role("checkbox", name=re.compile("E-courriers"))).to_be_checked()
    pages.check(page, "profil-communication")

    # The terms changed since the member accepted them: asked again at the next log-in.
    identity_db(system, "UPDATE accounts SET terms_version = '2020-01' FROM members WHERE accounts.member_id = members.id"
                " AND members.membership_number = $1", member.membership_number)
    other, other_guard = open_context(browser, system)
    try:
        second = other.new_page()
        log_in(second, member.membership_number)
        expect(second).to_have_url(re.compile(r"/cgu/acceptation$"))
        pages.check(second, "cgu-acceptation")
        second.get_by_role("button", name="VALIDER").click()
        expect(second.locator("#accept-error")).to_be_visible()
        second.get_by_role("checkbox", name=re.compile("J'ai lu et j'accepte")).check()
        second.get_by_role("button", name="VALIDER").click()
        expect(second).to_have_url(re.compile(r"/espace$"))

        # Log-out everywhere from the second browser ends the first one's session too.
        second.get_by_role("button", name="Me déconnecter de tous mes appareils").click()
        expect(second).to_have_url(re.compile(r"/connexion\?etat=deconnecte-partout$"))
    finally:
        other.close()
    other_guard.check()
    revoked = identity_db(
        system, "UPDATE session_families SET last_used_at = last_used_at FROM accounts, members"
        " WHERE session_families.account_id = accounts.id AND accounts.member_id = members.id"
        " AND members.membership_number = $1 AND session_families.revoked_at IS NOT NULL", member.membership_number)
    assert revoked == "UPDATE 2"  # both browsers' sessions, revoked through the API
    # The first browser's refresh token no longer works: once its access token is due for
    # renewal (WEB_REFRESH_MARGIN_S in the test settings makes that a few seconds), log in again.
    time.sleep(6)
    page.goto("/profil")
    expect(page).to_have_url(re.compile(r"/connexion\?etat=session-expiree$"))


def test_an_access_token_about_to_expire_is_renewed_without_the_member_noticing(page: Page, system, gateway, registry, mailbox):
    member = registry.take()
    register_and_activate(gateway, mailbox, member)
    log_in(page, member.membership_number)
    expect(page).to_have_url(re.compile(r"/espace$"))
    before = session_cookie(page.context)["value"]
    time.sleep(6)  # past the refresh point of the test settings
    page.goto("/profil")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mon profil")
    assert session_cookie(page.context)["value"] != before  # a new pair of tokens, sealed again
    spent = identity_db(
        system, "UPDATE refresh_tokens SET used_at = used_at FROM session_families, accounts, members"
        " WHERE refresh_tokens.family_id = session_families.id AND session_families.account_id = accounts.id"
        " AND accounts.member_id = members.id AND members.membership_number = $1 AND refresh_tokens.used_at IS NOT NULL",
        member.membership_number)
    assert spent != "UPDATE 0"


def test_pages_of_claims_documents_and_the_directory_answer_and_pass_axe(page: Page, pages: Pages, gateway, registry, mailbox):
    """Whatever the APIs behind them answer today (some are still being built), each page is a
    proper French page: a 200 with its content, or its own 'service indisponible' page."""
    member = registry.take()
    register_and_activate(gateway, mailbox, member)
    page.goto("/professionnels-de-sante")
    expect(page.get_by_role("heading", level=1)).to_have_text("Recherche d'un professionnel de santé conventionné")
    pages.check(page, "professionnels-de-sante")
    page.goto("/cgu")
    pages.check(page, "cgu")
    page.goto("/mentions-legales")
    pages.check(page, "mentions-legales")
    log_in(page, member.membership_number)
    for path, name in [("/garanties", "garanties"), ("/remboursements", "remboursements"), ("/documents", "documents"),
                       ("/factures", "factures"), ("/carte-tiers-payant", "carte-tiers-payant"),
                       ("/messages", "messages")]:
        response = page.goto(path)
        assert response is not None and response.status < 500 or response.status in (502, 503), (path, response.status)
        expect(page.locator("h1")).to_have_count(1)
        pages.check(page, name)
    response = page.goto("/nulle-part")
    assert response is not None and response.status == 404
    pages.check(page, "page-introuvable")


# -- CSRF, cookies, headers ---------------------------------------------------------------------


def test_csrf_cookie_flags_and_page_headers(page: Page, system, gateway, registry, mailbox):
    member = registry.take()
    register_and_activate(gateway, mailbox, member)
    response = page.goto("/connexion")
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    log_in(page, member.membership_number)
    expect(page).to_have_url(re.compile(r"/espace$"))
    for cookie in page.context.cookies():
        assert cookie["httpOnly"] is True, cookie["name"]
        assert cookie["sameSite"] == "Lax", cookie["name"]
        assert cookie["secure"] is False  # dev over plain http; Secure (and __Host-) outside dev, see web's unit tests
    # Nothing readable in the cookie: the tokens are sealed (AES-GCM).
    value = session_cookie(page.context)["value"]
    assert "eyJ" not in value and member.membership_number not in value

    # A form posted without its token, with another browser's token, or from another origin: refused.
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=system.gateway_url, cookies=cookies, follow_redirects=False) as http:
        assert http.post("/deconnexion", data={}).status_code == 403
        assert http.post("/deconnexion", data={"csrf": "forged"}).status_code == 403
        token = page.locator("form[action='/deconnexion'] input[name=csrf]").first.get_attribute("value")
        assert http.post("/deconnexion", data={"csrf": token}, headers={"Origin": "https://evil.example"}).status_code == 403
        assert http.post("/connexion", data={"identifier": member.membership_number, "password": PASSWORD}).status_code == 403
    # Still logged in after the refused log-outs.
    page.goto("/espace")
    expect(page).to_have_url(re.compile(r"/espace$"))
    # An e-mailed link's token never reaches web's or the gateway's logs.
    page.goto("/activation?token=secret-token-123456")
    for log in ("web.log", "gateway.log"):
        assert "secret-token-123456" not in (system.log_dir / log).read_text()

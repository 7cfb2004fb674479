"""The problems identity's use cases raise, each with its stable code."""

from shared.platform.problems import ProblemError

INVALID_CREDENTIALS = ProblemError(
    401,
    "invalid_credentials",
    "Identifiants incorrects",
    "Identifiant ou mot de passe incorrect.",
    headers={"WWW-Authenticate": "Bearer"},
)


def account_not_activated() -> ProblemError:
    return ProblemError(
        403,
        "account_not_activated",
        "Compte non activé",
        "Votre espace n'est pas encore activé : cliquez sur le lien reçu par e-mail. "
        "Vous pouvez demander un nouveau lien.",
    )


def activation_problem(code: str) -> ProblemError:
    status, title, detail = {
        "activation_token_unknown": (400, "Lien d'activation invalide", "Ce lien d'activation n'est pas valide."),
        "activation_token_used": (409, "Lien déjà utilisé", "Ce lien a déjà servi : votre espace est activé, connectez-vous."),
        "activation_token_expired": (
            410,
            "Lien expiré",
            "Ce lien d'activation a expiré. Demandez un nouveau lien d'activation.",
        ),
        "activation_token_revoked": (
            410,
            "Lien remplacé",
            "Un lien plus récent vous a été envoyé : utilisez le dernier e-mail reçu.",
        ),
    }[code]
    # An expired link can be replaced: the front end offers POST /activations/resend.
    extensions = {"resend_possible": True} if code == "activation_token_expired" else None
    return ProblemError(status, code, title, detail, extensions=extensions)


def _french_wait(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} seconde{'s' if seconds > 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes > 1 else ''}"


def too_many_attempts(retry_after_s: int, *, hint: str = "") -> ProblemError:
    return ProblemError(
        429,
        "too_many_attempts",
        "Trop de tentatives",
        f"Trop de tentatives infructueuses. Réessayez dans {_french_wait(retry_after_s)}. {hint}".strip(),
        headers={"Retry-After": str(retry_after_s)},
        extensions={"retry_after": retry_after_s},
    )

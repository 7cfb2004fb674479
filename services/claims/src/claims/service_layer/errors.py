"""The problems claims's use cases raise (problem+json, French messages)."""

from shared.platform.problems import ProblemError, field_error


def line_not_found() -> ProblemError:
    # Another member's line and a line that does not exist answer the same.
    return ProblemError(404, "reimbursement_not_found", "Remboursement introuvable",
                        "Ce remboursement n'existe pas ou ne vous concerne pas.")


def no_contract() -> ProblemError:
    return ProblemError(404, "contract_not_found", "Contrat introuvable",
                        "Aucun contrat n'est rattaché à votre espace pour le moment.")


def claim_not_found() -> ProblemError:
    return ProblemError(404, "claim_not_found", "Demande introuvable", "Cette demande de remboursement n'existe pas.")


def claim_not_reviewable(status: str) -> ProblemError:
    return ProblemError(409, "claim_not_reviewable", "Demande déjà traitée",
                        f"Cette demande n'attend pas de traitement (statut : {status}).")


def invalid(field: str, code: str, message: str) -> ProblemError:
    return ProblemError(422, "validation_failed", "Certains champs ne sont pas valides",
                        "Corrigez les champs signalés puis réessayez.", [field_error(field, code, message)])

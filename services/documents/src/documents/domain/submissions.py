"""An invoice submission's life, as the member reads it (French, no health detail beyond it)."""

from __future__ import annotations

SCANNING = "scanning"
QUARANTINED = "quarantined"
SUBMITTED = "submitted"
RECEIVED = "received"
IN_REVIEW = "in_review"
SETTLED = "settled"
REJECTED = "rejected"

MESSAGES = {
    SCANNING: "Vos justificatifs sont en cours de vérification antivirus.",
    SUBMITTED: "Vos justificatifs ont été transmis à votre centre de gestion.",
    RECEIVED: "Votre demande de remboursement a été reçue par votre centre de gestion.",
    IN_REVIEW: "Votre demande est en cours d'examen par un gestionnaire.",
    SETTLED: "Votre demande a été traitée : le relevé de prestations est disponible dans vos documents.",
}


def quarantined_message(file_names: list[str]) -> str:
    names = ", ".join(f"« {n} »" for n in file_names)
    many = len(file_names) > 1
    return (
        f"{'Les fichiers' if many else 'Le fichier'} {names} "
        f"{'ont été bloqués' if many else 'a été bloqué'} par notre antivirus et mis en quarantaine : "
        "votre demande n'a pas été transmise. Envoyez-nous une copie saine de vos justificatifs."
    )


def rejected_message(reason: str) -> str:
    return f"Votre demande a été refusée : {reason}"


def message_for(status: str) -> str:
    return MESSAGES.get(status, "")

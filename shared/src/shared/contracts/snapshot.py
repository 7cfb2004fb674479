"""Write the committed JSON schema and example of every event (`python -m shared.contracts.snapshot`).

Run it when you add an event or a new version; an existing version's files are never rewritten
(use --force only before the version has ever been published). tests/test_contracts.py checks
that the models stay readable for the committed examples and compatible with the schemas.
"""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from shared.contracts.registry import EVENT_TYPES

SCHEMAS = Path(__file__).parent / "schemas"

_M = uuid.UUID("8faab599-f521-489c-a221-7eff70b982ea")
_A = uuid.UUID("def329f1-a1c2-4960-ae7a-f5906b4378ac")
_D = uuid.UUID("073ec127-e10b-4391-bf57-f2efdc4fc264")
_T = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
_C = uuid.UUID("5b0c1a7e-3f43-4c55-9d38-1c2f0e6a9b11")  # a claim
_L = uuid.UUID("b6f2a0d4-7e1c-4a8f-a2b3-5d9e8c7f6a01")  # a reimbursement line
_S = uuid.UUID("0e9d8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c6b")  # an upload submission
_F = uuid.UUID("c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f")  # a stored file or document
_LINE = {
    "line_id": _L, "line_number": 1, "beneficiary_member_id": _M, "beneficiary_name": "Camille Martin",
    "care_date": date(2026, 11, 20), "act_code": "G", "act_label": "Consultation de médecine générale",
    "quantity": 1, "amount_charged_cents": 3000, "secu_base_cents": 3000, "secu_rate_pct": 70,
    "secu_paid_cents": 1900, "participation_cents": 200, "mutuelle_paid_cents": 900,
    "out_of_pocket_cents": 200, "payee": "member", "status": "paid",
}

EXAMPLES: dict[str, dict] = {
    "identity.MemberRegistered": {"member_id": _M, "account_id": _A, "paperless": True, "registered_at": _T},
    "identity.ActivationLinkIssued": {
        "member_id": _M, "account_id": _A, "email": "camille.martin@example.org", "first_name": "Camille",
        "last_name": "Martin", "token": "CF31syA3so2bflUOIGle_BliDtcBZYsjp5UIoSBTcL0", "expires_at": _T,
    },
    "identity.AccountActivated": {"member_id": _M, "account_id": _A, "activated_at": _T},
    "identity.MemberEnrolled": {
        "member_id": _M, "membership_number": "100000001", "contract_number": "C2024000001",
        "last_name": "Martin", "first_name": "Camille", "birth_date": date(1985, 4, 12),
    },
    "identity.AccountAlreadyExists": {
        "member_id": _M, "account_id": _A, "email": "camille.martin@example.org", "first_name": "Camille",
        "last_name": "Martin", "attempted_at": _T,
    },
    "identity.EmailChangeRequested": {
        "member_id": _M, "account_id": _A, "new_email": "camille.martin@example.net",
        "previous_email": "camille.martin@example.org", "first_name": "Camille", "last_name": "Martin",
        "token": "Qm9uam91ciBDYW1pbGxlLCBjZWNpIGVzdCB1biBleGVt", "expires_at": _T, "requested_at": _T,
    },
    "identity.EmailChanged": {
        "member_id": _M, "account_id": _A, "email": "camille.martin@example.net", "first_name": "Camille",
        "last_name": "Martin", "changed_at": _T,
    },
    "identity.ProfileUpdated": {
        "member_id": _M, "account_id": _A, "changed": ["postal_address", "phone"],
        "postal_address": {
            "line1": "12 rue des Lilas", "line2": "Bâtiment B", "postal_code": "69003", "city": "Lyon", "country": "FR",
        },
        "updated_at": _T,
    },
    "identity.CommunicationPreferencesChanged": {
        "member_id": _M, "paperless": False, "reimbursement_alerts": True, "changed_at": _T,
    },
    "identity.PasswordResetRequested": {
        "member_id": _M, "account_id": _A, "email": "camille.martin@example.org", "first_name": "Camille",
        "last_name": "Martin", "token": "dW4gbGllbiBkZSByw6lpbml0aWFsaXNhdGlvbiBmaWN0", "expires_at": _T,
    },
    "identity.PasswordChanged": {
        "member_id": _M, "account_id": _A, "email": "camille.martin@example.org", "first_name": "Camille",
        "last_name": "Martin", "method": "reset", "changed_at": _T,
    },
    "notifications.EmailSent": {"delivery_id": _D, "member_id": _M, "kind": "activation", "sent_at": _T},
    "notifications.EmailFailed": {
        "delivery_id": _D, "member_id": _M, "kind": "activation", "attempts": 8,
        "error_type": "ConnectionRefusedError", "failed_at": _T,
    },
    "claims.ClaimReceived": {
        "claim_id": _C, "contract_number": "C2024000001", "holder_member_id": _M, "beneficiary_member_id": _M,
        "source": "noemie", "external_ref": "D2026112000001", "status": "received", "received_at": _T,
    },
    "claims.ClaimSettled": {
        "claim_id": _C, "contract_number": "C2024000001", "holder_member_id": _M, "beneficiary_member_ids": [_M],
        "source": "noemie", "external_ref": "D2026112000001", "status": "settled", "lines": [_LINE],
        "total_charged_cents": 3000, "total_secu_paid_cents": 1900, "total_mutuelle_paid_cents": 900,
        "total_out_of_pocket_cents": 200, "settled_at": _T,
    },
    "claims.ClaimRejected": {
        "claim_id": _C, "contract_number": "C2024000001", "holder_member_id": _M, "beneficiary_member_id": _M,
        "source": "upload", "external_ref": str(_S), "submission_id": _S, "reason_code": "missing_document",
        "reason": "La facture acquittée est illisible ou manquante.", "rejected_at": _T,
    },
    "claims.ReimbursementDisputed": {
        "dispute_id": _D, "claim_id": _C, "line_id": _L, "member_id": _M, "holder_member_id": _M,
        "beneficiary_member_id": _M, "care_date": date(2026, 11, 20),
        "act_label": "Consultation de médecine générale", "comment": "Je n'ai pas consulté ce jour-là.",
        "disputed_at": _T,
    },
    "documents.InvoiceSubmitted": {
        "submission_id": _S, "member_id": _M, "beneficiary_member_id": _M, "beneficiary_membership_number": "100000001",
        "contract_number": "C2024000001", "care_type": "osteopathy", "care_date": date(2026, 11, 18),
        "amount_charged_cents": 6000, "comment": None, "document_ids": [_F], "submitted_at": _T,
    },
    "documents.DocumentIssued": {
        "document_id": _F, "member_id": _M, "document_type": "contribution_call",
        "title": "Appel de cotisation 2027", "delivery": "online", "issued_at": _T,
    },
    "documents.MessageAnswered": {
        "thread_id": _D, "member_id": _M, "subject_code": "reimbursement", "answered_at": _T,
    },
}


def file_stem(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    SCHEMAS.mkdir(exist_ok=True)
    for event_type, cls in EVENT_TYPES.items():
        stem = file_stem(event_type, cls.schema_version)
        schema_path, example_path = SCHEMAS / f"{stem}.schema.json", SCHEMAS / f"{stem}.example.json"
        if schema_path.exists() and not args.force:
            continue
        example = cls.model_validate(EXAMPLES[event_type]).model_dump(mode="json")
        schema_path.write_text(json.dumps(cls.model_json_schema(), indent=2, ensure_ascii=False) + "\n")
        example_path.write_text(json.dumps(example, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {stem}")


if __name__ == "__main__":
    main()

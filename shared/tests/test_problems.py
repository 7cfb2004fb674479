from shared.platform.context import accept_or_new_correlation_id
from shared.platform.problems import validation_errors_to_fields
from shared.platform.settings import ServiceSettings

import pytest
from pydantic import SecretStr, ValidationError


def test_pydantic_errors_become_french_field_messages():
    fields = validation_errors_to_fields(
        [
            {"type": "missing", "loc": ("body", "email"), "msg": "Field required"},
            {"type": "value_error", "loc": ("body", "birth_date"), "msg": "x", "ctx": {"error": "invalid_date|Date invalide."}},
            {"type": "something_new", "loc": ("body", "a", 0), "msg": "English text"},
        ]
    )
    assert [(f.field, f.code, f.message) for f in fields] == [
        ("email", "required", "Ce champ est obligatoire."),
        ("birth_date", "invalid_date", "Date invalide."),
        ("a.0", "invalid", "La valeur de ce champ n'est pas valide."),
    ]


def test_a_correlation_id_is_kept_when_safe_and_replaced_otherwise():
    assert accept_or_new_correlation_id("req-12345678") == "req-12345678"
    for unsafe in (None, "", "short", "x" * 65, "has space 123", "inject\nline1"):
        made = accept_or_new_correlation_id(unsafe)
        assert made != unsafe and len(made) == 32


class _Settings(ServiceSettings):
    service_name: str = "test"
    port: int = 1


@pytest.mark.parametrize("url", ["changeme", "postgresql+asyncpg://espace:espace@db/x"])
def test_placeholder_secrets_are_refused_outside_dev(url):
    _Settings(environment="dev", database_url=SecretStr(url))
    with pytest.raises(ValidationError):
        _Settings(environment="prod", database_url=SecretStr(url))
    _Settings(environment="prod", database_url=SecretStr("postgresql+asyncpg://app:Xk29-long-secret@db/x"))

import json

from shared.platform.problems import ProblemError, problem_response


def test_extension_members_are_added_to_the_problem_body_without_overriding_standard_ones():
    response = problem_response(410, "gone_code", "Titre", "Détail", extensions={"resend_possible": True, "status": 200})
    body = json.loads(response.body)
    assert body["resend_possible"] is True
    assert body["status"] == 410 and body["code"] == "gone_code"
    assert response.media_type == "application/problem+json"


def test_a_problem_without_extensions_is_unchanged():
    body = json.loads(problem_response(404, "not_found", "Introuvable").body)
    assert set(body) == {"type", "title", "status", "code", "errors"}
    assert ProblemError(400, "x", "y").extensions is None


def test_length_errors_of_constrained_types_keep_their_french_codes():
    from shared.platform.problems import validation_errors_to_fields

    fields = validation_errors_to_fields(
        [
            {"type": "too_short", "loc": ("body", "last_name"), "msg": "x", "ctx": {"min_length": 1}},
            {"type": "too_long", "loc": ("body", "city"), "msg": "x", "ctx": {"max_length": 200}},
        ]
    )
    assert [(f.field, f.code) for f in fields] == [("last_name", "too_short"), ("city", "too_long")]

"""The whole public API fuzzed against its own contract: schemathesis reads the gateway's merged
OpenAPI document and sends generated requests, valid and invalid, through the real gateway to the
real services, then runs every one of its checks on every answer (no server error, documented
status codes, content types, headers and bodies that match the schema, invalid data refused,
valid data accepted, authentication enforced...).

- Every operation, at least MAX_EXAMPLES generated cases each (examples, coverage and fuzzing
  phases, positive and negative data), derandomized so a failure comes back run after run.
  Protected operations carry the access token of a member registered, activated (from the
  e-mail) and logged in first; the log-out operations use a second member, so they cannot end
  the first one's session half-way.
- A stateful run: a state machine built from the document's OpenAPI links (log-in → me, profile,
  preferences, refresh, log-out; refresh → the same) extended with the steps no link can carry
  (registration → activation link read from the mailbox → activation → log-in), each request
  a schemathesis case sent through the gateway and checked like the others.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, precondition, rule
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput

from shared.platform.problems import REQUEST_MODEL_ERRORS
from tests.integration.conftest import PASSWORD, DemoMember, Mailbox, Registry, activation_token

# Per operation. Over every operation of the API this is the longest test in `make test` (6.3 min
# at 200 on 2 cores): 120 keeps the suite near its 15-minute budget.
MAX_EXAMPLES = 120
SEED = 20260427
STATEFUL_SCENARIOS = 30
STATEFUL_STEPS = 20

IDENTITY = "/api/v1/identity"
REGISTRATIONS = f"{IDENTITY}/registrations"
ACTIVATIONS = f"{IDENTITY}/activations"
SESSIONS = f"{IDENTITY}/sessions"
LOGGED_IN = f"POST {SESSIONS} -> 200"  # the state machine's bundle of successful log-ins

HYPOTHESIS = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


# Refusals of schema-valid requests that the operation documents, for rules a JSON schema cannot
# state: two fields that must be equal, the password policy (length, character classes, no
# common password, nothing from the member's name or birth date), a link token that must exist
# and still be valid, an address whose postal code must suit its country, a phone number that
# must be a real French or international one. Schemathesis's positive_data_acceptance expects
# 2xx (or 401, 403, 404, 409, 429) for them by default; these are added per operation, and
# `schema_valid_input_passes_the_request_model` below still fails any schema-valid request that
# the request model itself refuses (type, length, format...): the schema and the model must agree.
BUSINESS_REFUSALS: dict[str, list[str]] = {
    f"POST {IDENTITY}/registrations": ["422"],  # confirmations, password policy, birth date in the future,
    # an address no mail reaches (e-mail_validator refuses special-use domains such as .test)
    f"POST {IDENTITY}/activations": ["400", "410"],  # unknown / expired or replaced link
    f"POST {IDENTITY}/activations/resend": ["422"],  # an address no mail reaches (.test, .invalid...)
    f"POST {IDENTITY}/password-resets/confirm": ["400", "410", "422"],  # link; password policy
    f"POST {IDENTITY}/me/password": ["422"],  # password policy, confirmation, same as the current one
    f"PATCH {IDENTITY}/me/profile": ["422"],  # address rules (NF Z10-011, postal code), phone number
    f"POST {IDENTITY}/me/email-changes": ["422"],  # confirmation, already the account's address
    f"POST {IDENTITY}/email-changes/confirm": ["400", "410"],  # unknown / expired or replaced link
    f"POST {IDENTITY}/agent-passwords": ["400", "410", "422"],  # unknown / expired link; password policy
    f"POST {IDENTITY}/agent-sessions": ["422"],  # an address no mail reaches; a code of spaces only
    "POST /api/v1/documents/invoices": ["415", "422"],  # the beneficiary must be on the caller's contract,
    # the care date not in the future (multipart fields: the schema cannot say it); a file's type is
    # read from its bytes (PDF, JPEG, PNG or HEIC), not from its name
    "POST /api/v1/documents/messages": ["415", "422"],  # control characters in the body; file types
    "POST /api/v1/documents/messages/{thread_id}/replies": ["415", "422"],  # the same rules as a new message
    "GET /api/v1/documents": ["422"],  # a cursor is an opaque token the service issued
    "GET /api/v1/claims/reimbursements": ["422"],  # the beneficiary must be on the caller's contract,
    # the category one of the plan's, a cursor one the service issued
    "GET /api/v1/claims/providers": ["422"],  # a specialty the nomenclature has, a postcode the commune
    # list has (near), a q with letters or digits in it, a cursor the service issued for that query
}
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429"]
# A multipart field has no type: "0" is the text a "number" mutation becomes, so the negative
# phase's type mutations cannot be refused there. Their field rules (required, lengths, choices)
# are tested by the integration tests of each form instead.
MULTIPART = {
    "POST /api/v1/documents/invoices",
    "POST /api/v1/documents/messages",
    "POST /api/v1/documents/messages/{thread_id}/replies",
}


def load_schema(base_url: str) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "base-url": base_url,
            "request-timeout": 30,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "phases": {"stateful": {"max-steps": STATEFUL_STEPS}},
            "operations": [
                {
                    "include-name": name,
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": ACCEPTED + statuses},
                        **({"negative_data_rejection": {"enabled": False}} if name in MULTIPART else {}),
                    },
                }
                for name, statuses in BUSINESS_REFUSALS.items()
            ],
        }
    )
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config, timeout=30)


# What the request model (pydantic, before any business rule) says when it refuses a field: the
# French messages shared.platform.problems gives pydantic's errors, and identity's own field
# validator for dates. (An e-mail address can match `format: email` and still be refused, e.g.
# on a special-use domain such as .test that no mail reaches: that is a business refusal.)
_MODEL_CODES = {"invalid_date"}
# The one pair a business rule shares: control characters in an address line (the schema cannot
# say "no control character" in a regex every engine understands).
_MODEL_REFUSALS = REQUEST_MODEL_ERRORS - {("invalid_characters", "Ce champ contient des caractères non autorisés.")}


@schemathesis.check
def schema_valid_input_passes_the_request_model(ctx, response, case) -> bool | None:
    """A request the schema calls valid may break a business rule (a 422 naming that rule), never
    the request model: that would mean the schema promises what the service refuses."""
    if case.meta is None or not case.meta.generation.mode.is_positive or response.status_code != 422:
        return None
    errors = (response.json() or {}).get("errors") or []
    refused = [
        e for e in errors if (e.get("code"), e.get("message")) in _MODEL_REFUSALS or e.get("code") in _MODEL_CODES
    ]
    if refused:
        raise AssertionError(f"schema-valid input refused by the request model: {refused}")
    return None


def register_and_activate(base_url: str, mailbox: Mailbox, member: DemoMember) -> None:
    answer = requests.post(f"{base_url}{REGISTRATIONS}", json=member.registration(), timeout=30)
    assert answer.status_code == 202, answer.text
    [message] = mailbox.wait_for(member.email)
    answer = requests.post(f"{base_url}{ACTIVATIONS}", json={"token": activation_token(message)}, timeout=30)
    assert answer.status_code == 200, answer.text


def is_protected(case: schemathesis.Case) -> bool:
    return bool(case.operation.definition.raw.get("security"))


@pytest.fixture(scope="module")
def api_schema(system, registry: Registry, mailbox: Mailbox) -> schemathesis.BaseSchema:
    base_url = system.gateway_url
    member, logging_out = registry.take(), registry.take()
    for m in (member, logging_out):
        register_and_activate(base_url, mailbox, m)
    schema = load_schema(base_url)

    class MemberToken:
        """A real access token on every protected operation. The log-out operations get the
        second member's, so they never end the session the other operations use."""

        lock = threading.Lock()

        def get(self, case: schemathesis.Case, context: Any) -> str:
            who = logging_out if case.method.upper() == "DELETE" else member
            with self.lock:
                answer = requests.post(
                    f"{base_url}{SESSIONS}", json={"identifier": who.membership_number, "password": PASSWORD}, timeout=30
                )
            assert answer.status_code == 200, answer.text
            return answer.json()["access_token"]

        def set(self, case: schemathesis.Case, data: str, context: Any) -> None:
            if is_protected(case):
                case.headers = case.headers or {}
                case.headers["Authorization"] = f"Bearer {data}"

    # Access tokens live 15 minutes: a fresh one every 5. A 401 is no reason to log in again
    # (public operations answer 401 to the fuzzed credentials they are sent).
    schema.auth(refresh_interval=300, retry_on=[], cache_by_key=lambda case, _: case.method.upper() == "DELETE")(
        MemberToken
    )
    return schema


fuzzed = schemathesis.pytest.from_fixture("api_schema")


@fuzzed.parametrize()
@settings(max_examples=MAX_EXAMPLES, **HYPOTHESIS)
def test_every_operation_keeps_its_contract_whatever_it_is_sent(case: schemathesis.Case) -> None:
    case.call_and_validate()


def test_register_activate_log_in_and_use_the_session_as_a_state_machine(system, registry: Registry, mailbox: Mailbox):
    schema = load_schema(system.gateway_url)
    Links = schema.as_state_machine()
    assert LOGGED_IN in Links.bundles, "identity's log-in must link to the operations that use its tokens"
    register = schema[REGISTRATIONS]["POST"]
    activate = schema[ACTIVATIONS]["POST"]
    log_in = schema[SESSIONS]["POST"]

    class MemberJourney(Links):  # type: ignore[misc, valid-type]
        """The links carry a log-in's tokens onwards; these rules make the log-ins, from a
        registration and the activation link that only the e-mail carries."""

        registered = Bundle("registered")
        activated = Bundle("activated")
        scenarios = 0
        seen: Counter[str] = Counter()
        registrations = 0  # in this scenario

        def setup(self) -> None:
            super().setup()
            self.registrations = 0

        def after_call(self, response, case) -> None:
            super().after_call(response, case)
            type(self).seen[f"{case.method} {case.path} {response.status_code}"] += 1

        def teardown(self) -> None:
            type(self).scenarios += 1
            super().teardown()

        def _add_results_to_targets(self, targets, results):
            # Schemathesis files its steps' outputs by response; the members go where they're told.
            if all(isinstance(r, StepOutput) for r in results):
                return super()._add_results_to_targets(targets, results)
            return RuleBasedStateMachine._add_results_to_targets(self, targets, results)

        def _send(self, case: schemathesis.Case, *expected: int) -> StepOutput:
            # What schemathesis' own root rules do: record the case (links from its answer name it
            # as their parent), then send it through the gateway and run every check on the answer.
            step = StepInput.initial(case)
            self.recorder.record_case(case=case)
            self.control.record_step(step, self.recorder)
            output = self.step(step)
            assert output.response.status_code in expected, (output.response.status_code, output.response.text)
            return output

        @precondition(lambda self: self.registrations < 2)  # a scenario's steps go to the journey, not the forms
        @rule(target=registered, typed=st.booleans(), paperless=st.booleans())
        def a_member_registers(self, typed: bool, paperless: bool) -> DemoMember:
            self.registrations += 1
            member = registry.take()
            form = member.registration(paperless=paperless)
            if typed:  # as a member types it: other case, no accents, French date
                form |= {"last_name": "LEFEVRE N DIAYE", "first_name": "zoe",
                         "birth_date": member.birth_date.strftime("%d/%m/%Y")}
            self._send(register.Case(body=form, media_type="application/json"), 202)
            return member

        @rule(member=registered)
        def a_member_not_activated_yet_cannot_log_in(self, member: DemoMember) -> None:
            # 429 once identity's own throttle steps in (five refusals in a row).
            self._send(log_in.Case(body={"identifier": member.membership_number, "password": PASSWORD},
                                   media_type="application/json"), 403, 429)

        @rule(target=activated, member=consumes(registered))
        def the_member_activates_from_the_emailed_link(self, member: DemoMember) -> DemoMember:
            [message] = mailbox.wait_for(member.email)
            self._send(activate.Case(body={"token": activation_token(message)}, media_type="application/json"), 200)
            return member

        @rule(target=Links.bundles[LOGGED_IN], member=activated, by_contract=st.booleans())
        def the_member_logs_in(self, member: DemoMember, by_contract: bool) -> StepOutput:
            identifier = member.contract_number if by_contract else member.membership_number
            return self._send(log_in.Case(body={"identifier": identifier, "password": PASSWORD},
                                          media_type="application/json"), 200)

    # As schemathesis runs its own state machines: generation only (replaying a scenario against
    # a live system, to shrink it, meets another state: rate limits, spent tokens, activated
    # accounts), one seeded suite after another. Its link rules flip true-random coins (follow the
    # link or explore), so Hypothesis may find a suite's data "flaky" and end it early: like
    # schemathesis' own runner, take that as the end of the suite and start the next one, until
    # enough scenarios have run.
    for suite in range(4 * STATEFUL_SCENARIOS):
        if MemberJourney.scenarios >= STATEFUL_SCENARIOS:
            break
        try:
            hypothesis.seed(SEED + suite)(MemberJourney).run(
                settings=settings(
                    max_examples=STATEFUL_SCENARIOS - MemberJourney.scenarios,
                    stateful_step_count=STATEFUL_STEPS,
                    phases=[Phase.generate],
                    **HYPOTHESIS,
                )
            )
        except hypothesis.errors.Flaky:
            continue
    assert MemberJourney.scenarios >= STATEFUL_SCENARIOS, MemberJourney.scenarios
    # The journey went all the way: registrations, activations, log-ins, and the links followed
    # with their tokens. (Which refreshes and log-outs succeed depends on the coins and the order:
    # a spent refresh token, or a session already ended, is a 401 the schema documents.)
    seen = MemberJourney.seen
    for step in (f"POST {REGISTRATIONS} 202", f"POST {ACTIVATIONS} 200", f"POST {SESSIONS} 200"):
        assert seen[step], (step, sorted(seen.items()))
    assert any(seen[f"GET {IDENTITY}/{path} 200"] for path in ("me", "me/profile", "me/preferences")), sorted(seen.items())

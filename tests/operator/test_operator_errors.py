"""API failures are classified by status, carry their retry delay, and reach kopf with the right policy."""

from __future__ import annotations

import kopf
import pytest

from ttsfleet.operator import errors


@pytest.mark.parametrize(
    ("status", "expected", "retryable"),
    [
        pytest.param(404, errors.ApiNotFound, False, id="404 is absent"),
        pytest.param(401, errors.ApiForbidden, False, id="401 is credentials"),
        pytest.param(403, errors.ApiForbidden, False, id="403 is RBAC"),
        pytest.param(400, errors.ApiInvalid, False, id="400 is a bad request"),
        pytest.param(422, errors.ApiInvalid, False, id="422 is a refused object"),
        pytest.param(409, errors.ApiConflict, True, id="409 is a conflict"),
        pytest.param(429, errors.ApiTooManyRequests, True, id="429 is load shedding"),
        pytest.param(500, errors.ApiServerError, True, id="500 is the server"),
        pytest.param(503, errors.ApiServerError, True, id="503 is the server"),
    ],
)
def test_each_status_maps_to_its_class_and_retry_policy(
    status: int, expected: type[errors.ApiError], retryable: bool
) -> None:
    error = errors.for_status(status, "GET /x", reason="Because")
    assert type(error) is expected
    assert error.retryable is retryable
    assert isinstance(error, errors.RetryableApiError) is retryable
    assert (error.status, error.reason) == (status, "Because")


def test_a_conflict_is_retried_after_a_second() -> None:
    error = errors.for_status(409, "PATCH /x")
    assert isinstance(error, errors.RetryableApiError)
    assert error.delay_s == 1.0


@pytest.mark.parametrize(
    ("retry_after_s", "delay_s"),
    [
        pytest.param(None, errors.DEFAULT_RETRY_DELAY_S, id="absent: the default"),
        pytest.param(7.0, 7.0, id="honoured"),
        pytest.param(0.0, 0.0, id="zero: at once"),
        pytest.param(-5.0, 0.0, id="negative: clamped to zero"),
        pytest.param(3600.0, errors.MAX_RETRY_AFTER_S, id="an hour: clamped to the maximum"),
    ],
)
def test_retry_after_is_honoured_within_bounds(retry_after_s: float | None, delay_s: float) -> None:
    error = errors.for_status(429, "LIST /x", retry_after_s=retry_after_s)
    assert isinstance(error, errors.ApiTooManyRequests)
    assert error.delay_s == delay_s


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("12", 12.0, id="seconds"),
        pytest.param("1.5", 1.5, id="fractional"),
        pytest.param("Wed, 21 Oct 2026 07:28:00 GMT", None, id="an HTTP date is not understood"),
    ],
)
def test_retry_after_header_is_read_as_seconds(header: str | None, seconds: float | None) -> None:
    assert errors.parse_retry_after(header) == seconds


def test_messages_are_cut_so_echoed_objects_never_flood_logs() -> None:
    error = errors.for_status(422, "x" * 10_000)
    assert len(str(error)) == errors.MAX_MESSAGE_CHARS


def test_a_retryable_error_becomes_a_temporary_kopf_error_with_its_delay() -> None:
    converted = errors.to_kopf(errors.for_status(429, "LIST /x", retry_after_s=30))
    assert isinstance(converted, kopf.TemporaryError)
    assert converted.delay == 30
    assert "ApiTooManyRequests" in str(converted)


def test_a_permanent_error_becomes_a_permanent_kopf_error_naming_the_class() -> None:
    converted = errors.to_kopf(errors.for_status(403, "PATCH /x: forbidden"))
    assert isinstance(converted, kopf.PermanentError)
    assert str(converted).startswith("ApiForbidden: PATCH /x")


def test_every_api_error_descends_from_the_operator_root() -> None:
    leaves = (
        errors.ApiUnreachable,
        errors.ApiConflict,
        errors.ApiTooManyRequests,
        errors.ApiServerError,
        errors.ApiNotFound,
        errors.ApiForbidden,
        errors.ApiInvalid,
    )
    assert all(issubclass(leaf, errors.OperatorError) for leaf in leaves)
    assert errors.ApiUnreachable("connect timeout").delay_s == errors.DEFAULT_RETRY_DELAY_S


def test_an_apply_whose_types_do_not_fit_the_schema_is_invalid_not_a_server_error() -> None:
    message = (
        "PATCH /apis/apps/v1/namespaces/voice/deployments/aura-en: 500 failed to create typed patch object "
        "(voice/aura-en; apps/v1, Kind=Deployment): .spec.template.spec.affinity: expected list, got &{a}"
    )
    error = errors.for_status(500, message, reason="InternalError")
    assert isinstance(error, errors.ApiInvalid) and not error.retryable
    assert isinstance(errors.for_status(500, "GET /x: 500 etcd timeout"), errors.ApiServerError)

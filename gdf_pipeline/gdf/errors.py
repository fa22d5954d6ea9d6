"""Typed errors of the GoDataFeed client, one per way a call can fail.

Every message and API message passes through `redact` when the error is built, so an error
can be logged, stored or shown in the UI without leaking the token or the consumer key.
"""

from __future__ import annotations

from typing import Any

from gdf_pipeline.gdf.redaction import redact


class GoDataFeedError(Exception):
    """A call to the GoDataFeed API failed; the message names the call and the order."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        api_message: str | None = None,
        order_id: str | None = None,
    ) -> None:
        super().__init__(redact(message))
        self.status_code = status_code
        self.api_message = None if api_message is None else redact(api_message)
        self.order_id = order_id

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the attributes when the error crosses a process boundary (pickled run events).
        return (self.__class__, self.args, self.__dict__)


class AuthorizationError(GoDataFeedError):
    """The consumer key was rejected, or a fresh token was rejected too: a setting to fix."""


class BadRequestError(GoDataFeedError):
    """GoDataFeed answered 400: the parameter or body is invalid; repeating will not help."""


class OrderNotFoundError(GoDataFeedError):
    """GoDataFeed answered 404: it does not know the order."""


class TransitionConflictError(GoDataFeedError):
    """GoDataFeed answered 409: the order's status does not allow the change.

    `current_status` and `current_order` hold the order as fetched right after the refusal,
    or None when that fetch failed too.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        api_message: str | None = None,
        order_id: str | None = None,
        current_status: str | None = None,
        current_order: dict | None = None,
    ) -> None:
        super().__init__(
            message, status_code=status_code, api_message=api_message, order_id=order_id
        )
        self.current_status = current_status
        self.current_order = current_order


class TransientError(GoDataFeedError):
    """5xx, 429, dropped connection or timeout still failing after every retry: try later."""

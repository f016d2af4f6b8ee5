"""A generic signed webhook: hand backlog items to any tracker we have no plugin for (Linear, a Zapier hook, an
internal service).

Body `{"type": "backlog_item.filed", "item": <BacklogItem.as_dict()>}`, signed with the Standard Webhooks scheme
(tools.notify.signing), so receivers verify it with the reference `standardwebhooks` library. `webhook-id` is
`backlog-<fingerprint>`: the same item always carries the same id, which is what Standard Webhooks receivers
dedupe on. The sink cannot see the receiver's store, so any 2xx counts as created, except that a 409 (the
receiver saying "I have this one") means created=False.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from tools.notify.signing import headers, secret_bytes
from tools.retro.model import BacklogItem, TicketRef
from tools.tickets.base import utc_now
from tools.tickets.transport import request, session

EVENT_TYPE = "backlog_item.filed"
DUPLICATE_STATUS = 409


@dataclass(frozen=True, slots=True)
class WebhookTicketSink:
    url: str = field(repr=False)  # webhook URLs often embed a credential
    secret: str = field(repr=False)
    name: str = "webhook"
    client: httpx.Client | None = field(default=None, repr=False, compare=False)
    timeout_seconds: float = 10.0
    clock: Callable[[], datetime] = field(default=utc_now, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            scheme = httpx.URL(self.url).scheme
        except httpx.InvalidURL:
            scheme = ""
        if scheme not in ("http", "https"):
            raise ValueError("the ticket webhook URL must be an http:// or https:// URL")
        secret_bytes(self.secret)  # a secret the signer cannot use fails here, with its reason

    def file(self, item: BacklogItem) -> TicketRef:
        message_id = webhook_id(item)
        body = json.dumps({"type": EVENT_TYPE, "item": item.as_dict()}, ensure_ascii=False).encode("utf-8")
        signed = headers(self.secret, message_id, int(self.clock().timestamp()), body)
        with session(self.client, self.timeout_seconds) as client:
            response = request(
                self.name,
                client,
                "POST",
                self.url,
                what="posting the backlog item to the ticket webhook",
                secrets=(self.secret, self.url),
                accept=(DUPLICATE_STATUS,),
                content=body,
                headers=signed,
            )
        return TicketRef(self.name, message_id, None, created=response.status_code != DUPLICATE_STATUS)


def webhook_id(item: BacklogItem) -> str:
    return "backlog-" + item.fingerprint

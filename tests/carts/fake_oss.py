"""The oss vendor fake: the webhook receiver at /api/updates plus a signed /healthz."""

from __future__ import annotations

from statusctl.carts import signing
from statusctl.domain.stores import Store

from .contract import ContractCase
from .fake_webhook import BAD, GOOD, Receiver, effects, reference_verify, secrets
from .fakeserver import Answer, Request, json_answer


class OssFake(Receiver):
    """What the OSS promises the adapter: POST /api/updates, and GET /healthz that rejects bad signatures."""

    def __init__(self) -> None:
        super().__init__(path="/api/updates", ok_status=202)
        self.health_checks = 0

    def __call__(self, req: Request) -> Answer:
        if req.path == "/healthz" and req.method == "GET":
            self.health_checks += 1
            try:
                reference_verify(self.keys, req.headers, req.body)
            except signing.SignatureError as exc:
                return Answer(401, f"signature refused: {exc}")
            except AssertionError as exc:
                self.disagreements.append(str(exc))
                return Answer(500, str(exc))
            return json_answer(200, {"status": "ok", "signature": "ok"})
        return super().__call__(req)


def make_store(base_url: str, good: bool = True) -> Store:
    return Store("status-page", "oss", base_url + "/api/updates", {"secret": {"value": GOOD if good else BAD}})


CASE = ContractCase(
    cart="oss",
    make_fake=OssFake,
    store=make_store,
    secrets=secrets,
    effects=effects,
)

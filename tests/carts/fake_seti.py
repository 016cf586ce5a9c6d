"""The seti vendor fake: statusctl's own demo cart script, served by FakeServer."""

from __future__ import annotations

from statusctl.democart import PATH, DemoCart
from statusctl.domain.record import Payload
from statusctl.domain.stores import Store

from .contract import ContractCase
from .fakeserver import Answer, Handler, Request

USER = "statusctl"
PASSWORD = "s3ti-pa55word"
CODE = "web1"


class SetiFake:
    """A FakeServer handler around a DemoCart: the same protocol logic as `statusctl demo`."""

    def __init__(self, **kwargs: object) -> None:
        self.cart = DemoCart(user=USER, password=PASSWORD, code=CODE, **kwargs)  # type: ignore[arg-type]

    def __call__(self, req: Request) -> Answer:
        form = {k: v[-1] for k, v in req.query.items()}
        form.update(req.form())
        status, text = self.cart.answer(req.path, req.method, form)
        return Answer(status, text)


def make_store(base_url: str, good: bool = True, **options: str) -> Store:
    return Store(
        "shop",
        "seti",
        base_url + PATH,
        {"user": {"value": USER}, "password": {"value": PASSWORD if good else "wrong-password"}},
        {"code": CODE, **options},
    )


def secrets(good: bool = True) -> dict[str, str]:
    return {"user": USER, "password": PASSWORD if good else "wrong-password"}


def effects(handler: Handler, payload: Payload) -> int:
    """Tracking numbers the cart holds for the order: a status set, so a resend adds nothing."""
    assert isinstance(handler, SetiFake)
    number = payload["order"]["cart_order_id"] or payload["order"]["number"]
    tracking = payload["packages"][0]["tracking"]
    return handler.cart.tracking_of(number).count(tracking or "")


CASE = ContractCase(
    cart="seti",
    make_fake=SetiFake,
    store=make_store,
    secrets=secrets,
    effects=effects,
)

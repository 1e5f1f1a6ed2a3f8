"""Subscription endpoints for a peer's REST API: offers, the consent view, subscribe, revoke.

``add_subscription_routes(server, subscriptions)`` adds them to a ``RestServer`` before it
starts; they share its bearer token and its JSON errors.

* ``GET /subscriptions/offers``: live offers we know (terms included)
* ``GET /subscriptions/consent``: the seller's consent view (who holds which periods, under which terms)
* ``GET /subscriptions/held``: our own subscriptions as a buyer, their status and the periods we hold
* ``POST /subscriptions/offers/{offer_id}/subscribe``: agree to an offer's terms (``{"first_period": n}``)
* ``POST /subscriptions/{subscription_id}/revoke``: end a subscription (``{"reason": "..."}``)
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from enerdatx.errors import MarketError
from enerdatx.market.rest import read_json
from enerdatx.market.subscription import Subscriptions
from enerdatx.market.subscription_formats import Offer

__all__ = ["add_subscription_routes"]


def _offer_json(offer: Offer, status: str) -> dict[str, Any]:
    return {"offer_id": offer.offer_id, "seller": offer.seller.hex(), "descriptor": offer.descriptor,
            "price": offer.price, "period_ms": offer.period_ms, "start": offer.start, "periods": offer.periods,
            "terms": {"purpose": offer.terms.purpose, "retention_days": offer.terms.retention_days,
                      "resale": offer.terms.resale}, "status": status}


async def _body(request: web.Request, allowed: dict[str, type]) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await read_json(request)  # a body nested too deeply was a RecursionError: a 500
    if not isinstance(body, dict) or set(body) - set(allowed):
        raise MarketError(f"the body is a JSON object with at most {sorted(allowed)}")
    for name, kind in allowed.items():
        if name in body and type(body[name]) is not kind:  # "first_period must be a int"
            raise MarketError(f"{name} must be {'an integer' if kind is int else 'a string'}")
    return body


def add_subscription_routes(server: Any, subscriptions: Subscriptions) -> None:
    """Serve ``subscriptions`` under /subscriptions on ``server`` (a RestServer not started yet)."""

    async def offers(_request: web.Request) -> web.Response:
        return web.json_response({"offers": [_offer_json(o, subscriptions.offer_status(o.offer_id))
                                             for o in subscriptions.live_offers()]})

    async def consent(_request: web.Request) -> web.Response:
        return web.json_response({"consent": subscriptions.consent().to_dict(orient="records")})

    async def held(_request: web.Request) -> web.Response:
        rows = [{"subscription_id": sid, "offer_id": h.agreement.offer.hex(), "seller": h.agreement.seller.hex(),
                 "status": subscriptions.subscription_status(sid),
                 "periods_held": sorted(p for p, t in h.trades.items() if t is not None)}
                for sid, h in subscriptions.held.items()]
        return web.json_response({"subscriptions": rows})

    async def subscribe(request: web.Request) -> web.Response:
        body = await _body(request, {"first_period": int})
        agreement = await subscriptions.subscribe(request.match_info["offer_id"],
                                                  first_period=body.get("first_period", 0))
        return web.json_response({"subscription_id": agreement.subscription_id,
                                  "offer_id": agreement.offer.hex()}, status=201)

    async def revoke(request: web.Request) -> web.Response:
        body = await _body(request, {"reason": str})
        block = subscriptions.revoke(request.match_info["subscription_id"], body.get("reason", "consent_withdrawn"))
        return web.json_response({"revocation": block.hash.hex()}, status=201)

    server.app.add_routes([
        web.get("/subscriptions/offers", offers),
        web.get("/subscriptions/consent", consent),
        web.get("/subscriptions/held", held),
        web.post("/subscriptions/offers/{offer_id}/subscribe", subscribe),
        web.post("/subscriptions/{subscription_id}/revoke", revoke),
    ])

"""The reputation hooks on the real market (in-process markets of tests/market, real ledgers)."""

import pytest

from enerdatx.errors import TransactionRejectedError
from enerdatx.market import PAYMENT
from enerdatx.reputation import ContributionRule, Direction, ReputationView
from enerdatx.reputation.market import rank_by_reputation, refuse_below
from tests.support.market import DESCRIPTOR, Town, readings_bytes


async def test_a_market_payment_counts_as_the_sellers_contribution_to_the_buyer():
    town = Town()
    seller, buyer = town.add(), town.add()
    view = ReputationView(buyer.ledger)
    listing = seller.sell(readings_bytes(1), DESCRIPTOR, 25)
    await buyer.buy(listing.listing_id)
    assert view.netflow(seller.public_key) == 25
    assert view.graph[seller.public_key][buyer.public_key]["count"] == 1


async def test_a_seller_refuses_buyers_below_a_threshold_and_a_buyer_ranks_sellers():
    town = Town()
    seller, regular, newcomer, other_seller = town.add(), town.add(), town.add(), town.add()
    first = seller.sell(readings_bytes(1), DESCRIPTOR, 25)
    await regular.buy(first.listing_id)
    # The seller rates buyers by what they paid it, and wraps the market's own payment policy.
    payments = ReputationView(seller.ledger, rule=ContributionRule(direction=Direction.FROM_PROPOSER))
    seller.ledger.register_policy(PAYMENT, refuse_below(payments, 10, seller.payment_policy))
    second = seller.sell(readings_bytes(2), DESCRIPTOR, 10)
    with pytest.raises(TransactionRejectedError, match="below 10"):
        await newcomer.buy(second.listing_id)
    trade = await regular.buy(second.listing_id)
    assert trade.plaintext == readings_bytes(2)
    # A buyer's order book, best seller first: the one it bought from before the cheaper one.
    cheaper = other_seller.sell(readings_bytes(3), DESCRIPTOR, 5)
    book = regular.book.search()
    assert [listing.price for listing in book][0] == cheaper.price
    ranked = rank_by_reputation(ReputationView(regular.ledger), book, key=lambda listing: listing.seller)
    assert ranked[0].seller == seller.public_key and ranked[-1].seller == other_seller.public_key

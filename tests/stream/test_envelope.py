"""A batch's items are made inside their channel's Envelope: the message is Envelope's own
bytes, whether an item was made there or copied in."""

from exchange.stream.v1 import stream_pb2 as spb
from stream_svc.mirror import Output


def test_items_made_in_the_envelope_serialize_as_an_envelope_of_them() -> None:
    # Items of one-, two- and three-byte lengths, and an empty one.
    items = [
        spb.MarketData(trade=spb.Trade(market="TATA_INR", trade_id=7, price="1.5")),
        spb.MarketData(depth=spb.DepthUpdate(market="X" * 200, first_update_id=1)),
        spb.MarketData(depth=spb.DepthUpdate(market="Y" * 20_000)),
        spb.MarketData(),
    ]
    out = Output()
    out.item("md.TATA_INR").trade.CopyFrom(items[0].trade)
    for item in items[1:]:
        out.add("md.TATA_INR", item)
    assert list(out.channels["md.TATA_INR"]) == items
    raw = out.envelopes["md.TATA_INR"].SerializeToString()
    assert raw == spb.Envelope(items=items).SerializeToString()
    assert list(spb.Envelope.FromString(raw).items) == items

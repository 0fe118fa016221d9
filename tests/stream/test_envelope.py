"""The publisher's envelopes, built from serialized items, are Envelope's own bytes."""

from exchange.stream.v1 import stream_pb2 as spb
from stream_svc.publisher import envelope


def test_envelope_bytes_match_protobuf() -> None:
    # Items of one-, two- and three-byte lengths, and an empty one.
    items = [
        spb.MarketData(trade=spb.Trade(market="TATA_INR", trade_id=7, price="1.5")),
        spb.MarketData(depth=spb.DepthUpdate(market="X" * 200, first_update_id=1)),
        spb.MarketData(depth=spb.DepthUpdate(market="Y" * 20_000)),
        spb.MarketData(),
    ]
    raws = [item.SerializeToString() for item in items]
    assert envelope(raws) == spb.Envelope(items=items).SerializeToString()
    assert list(spb.Envelope.FromString(envelope(raws)).items) == items
    assert envelope([]) == b""

import { describe, expect, it } from "vitest";
import { type DepthDiff, OrderBook } from "../src/lib/book";

const diff = (U: number, u: number, b: [string, string][] = [], a: [string, string][] = []): DepthDiff => ({
  U,
  u,
  b,
  a,
});

function synced(lastUpdateId = 10): OrderBook {
  const book = new OrderBook();
  expect(
    book.onSnapshot({
      lastUpdateId: String(lastUpdateId),
      bids: [
        ["100.00", "5"],
        ["99.50", "2"],
      ],
      asks: [
        ["101.00", "3"],
        ["102.00", "4"],
      ],
    }),
  ).toBe("synced");
  return book;
}

describe("order book from a snapshot and depth diffs", () => {
  it("sorts both sides and sums sizes from the best price", () => {
    const book = synced();
    expect(book.topBids(5)).toEqual([
      { price: "100.00", quantity: "5", total: "5" },
      { price: "99.50", quantity: "2", total: "7" },
    ]);
    expect(book.topAsks(1)).toEqual([{ price: "101.00", quantity: "3", total: "3" }]);
    expect(book.bestBid()).toBe("100.00");
    expect(book.bestAsk()).toBe("101.00");
  });

  it("buffers diffs until the snapshot, then drops those it already includes", () => {
    const book = new OrderBook();
    expect(book.onDiff(diff(5, 8, [["100.00", "1"]]))).toBe("buffered"); // before the snapshot
    expect(book.onDiff(diff(9, 12, [["98.00", "1"]]))).toBe("buffered"); // straddles it
    expect(book.onDiff(diff(13, 13, [], [["101.00", "0"]]))).toBe("buffered");
    expect(book.onSnapshot({ lastUpdateId: "10", bids: [["100.00", "5"]], asks: [["101.00", "3"]] })).toBe(
      "synced",
    );
    expect(book.lastUpdateId).toBe(13);
    expect(book.topBids(5).map((r) => [r.price, r.quantity])).toEqual([
      ["100.00", "5"],
      ["98.00", "1"],
    ]);
    expect(book.topAsks(5)).toEqual([]); // quantity "0" removed the level
  });

  it("applies diffs in a chain and ignores old ones", () => {
    const book = synced(10);
    expect(book.onDiff(diff(3, 10, [["100.00", "9"]]))).toBe("stale");
    expect(
      book.onDiff(
        diff(11, 11, [
          ["100.00", "6"],
          ["100.5", "1"],
        ]),
      ),
    ).toBe("applied");
    expect(
      book.onDiff(
        diff(
          12,
          15,
          [],
          [
            ["101", "0"],
            ["100.90", "2"],
          ],
        ),
      ),
    ).toBe("applied");
    expect(book.topBids(2).map((r) => r.price)).toEqual(["100.5", "100.00"]);
    expect(book.topBids(1)[0].quantity).toBe("1");
    expect(book.topAsks(5).map((r) => r.price)).toEqual(["100.90", "102.00"]);
  });

  it("reports a gap when an update is missing, and resyncs from a newer snapshot", () => {
    const book = synced(10);
    expect(book.onDiff(diff(11, 12))).toBe("applied");
    expect(book.onDiff(diff(14, 15, [["50", "1"]]))).toBe("gap");
    expect(book.topBids(10).map((r) => r.price)).not.toContain("50"); // the gap's diff is not applied
    book.reset();
    expect(book.synced).toBe(false);
    expect(book.onDiff(diff(16, 17, [["60", "1"]]))).toBe("buffered");
    expect(book.onSnapshot({ lastUpdateId: 15, bids: [["55", "1"]], asks: [] })).toBe("synced");
    expect(book.topBids(10).map((r) => r.price)).toEqual(["60", "55"]);
  });

  it("takes a diff that restarts the chain after lost updates (U = u + 1) as a gap", () => {
    const book = synced(10);
    expect(book.onDiff(diff(11, 12))).toBe("applied");
    expect(book.onDiff(diff(31, 30, [["50", "1"]]))).toBe("gap");
    book.reset();
    expect(book.onDiff(diff(31, 30, [["50", "1"]]))).toBe("buffered");
    expect(book.onSnapshot({ lastUpdateId: 25, bids: [], asks: [] })).toBe("gap");
    expect(book.onSnapshot({ lastUpdateId: 30, bids: [["50", "1"]], asks: [] })).toBe("synced");
  });

  it("says gap when the snapshot is older than the first buffered diff", () => {
    const book = new OrderBook();
    book.onDiff(diff(20, 21, [["70", "1"]]));
    book.onDiff(diff(22, 22, [["71", "1"]]));
    expect(book.onSnapshot({ lastUpdateId: 10, bids: [], asks: [] })).toBe("gap");
    expect(book.synced).toBe(false);
    // The buffered diffs are kept for the next, newer snapshot.
    expect(book.onSnapshot({ lastUpdateId: 21, bids: [["70", "1"]], asks: [] })).toBe("synced");
    expect(book.topBids(10).map((r) => r.price)).toEqual(["71", "70"]);
  });
});

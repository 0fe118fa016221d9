import {
  CandlestickSeries,
  ColorType,
  createChart,
  HistogramSeries,
  type IChartApi,
  type ISeriesApi,
  type UTCTimestamp,
} from "lightweight-charts";
import { useEffect, useRef, useState } from "preact/hooks";
import * as api from "../lib/api";
import { decimalsOf } from "../lib/decimal";
import { stream } from "../lib/stream";

const INTERVALS = ["1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w"] as const;
const UP = "#26a69a";
const DOWN = "#ef5350";

interface Candle {
  time: UTCTimestamp;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

interface KlineFrame {
  t: string; // "2025-07-20T08:26:00", UTC
  o: string;
  h: string;
  l: string;
  c: string;
  v: string;
}

/** Seconds since the epoch of a UTC time written without a zone ("2025-07-20 08:26:00"). */
function utcSeconds(text: string): UTCTimestamp {
  return (Date.parse(`${text.replace(" ", "T")}Z`) / 1000) as UTCTimestamp;
}

// The chart draws pixels: here, and only here, prices become floating-point numbers.
function candle(time: UTCTimestamp, k: { o: string; h: string; l: string; c: string; v: string }): Candle {
  return {
    time,
    open: Number(k.o),
    high: Number(k.h),
    low: Number(k.l),
    close: Number(k.c),
    volume: Number(k.v),
  };
}

interface Series {
  chart: IChartApi;
  candles: ISeriesApi<"Candlestick">;
  volume: ISeriesApi<"Histogram">;
}

/** TradingView's lightweight-charts: candles and volume from REST, then the kline stream. */
export function Chart(props: { market: api.Market }) {
  const m = props.market;
  const [interval, setInterval] = useState<string>("1m");
  const [count, setCount] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const box = useRef<HTMLDivElement>(null);
  const series = useRef<Series | null>(null);

  useEffect(() => {
    const chart = createChart(box.current!, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: "transparent" }, textColor: "#9aa4b2" },
      grid: { vertLines: { color: "#1c2230" }, horzLines: { color: "#1c2230" } },
      rightPriceScale: { borderColor: "#273043" },
      timeScale: {
        borderColor: "#273043",
        timeVisible: true,
        secondsVisible: false,
        rightOffset: 6,
        minBarSpacing: 2,
      },
      crosshair: { mode: 0 },
    });
    const precision = decimalsOf(m.tickSize);
    const candles = chart.addSeries(CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      borderVisible: false,
      wickUpColor: UP,
      wickDownColor: DOWN,
      priceFormat: { type: "price", precision, minMove: Number(m.tickSize) },
    });
    const volume = chart.addSeries(HistogramSeries, {
      priceScaleId: "volume",
      priceFormat: { type: "volume" },
      lastValueVisible: false,
      priceLineVisible: false,
    });
    chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    series.current = { chart, candles, volume };
    return () => {
      series.current = null;
      chart.remove();
    };
  }, [m.symbol]);

  useEffect(() => {
    let stopped = false;
    let last = 0;
    let bars = 0;
    series.current?.candles.setData([]);
    series.current?.volume.setData([]);
    setCount(0);
    const put = (c: Candle) => {
      const s = series.current;
      if (!s || c.time < last) return; // a late frame for a bar already closed
      s.candles.update(c);
      s.volume.update({ time: c.time, value: c.volume, color: c.close >= c.open ? `${UP}80` : `${DOWN}80` });
      if (c.time > last) setCount(++bars);
      last = c.time;
    };
    async function load(): Promise<void> {
      try {
        const list = await api.klines(m.symbol, interval);
        const s = series.current;
        if (stopped || !s) return;
        const data = list.map((k) =>
          candle(utcSeconds(k.start), { o: k.open, h: k.high, l: k.low, c: k.close, v: k.volume }),
        );
        s.candles.setData(data);
        s.volume.setData(
          data.map((c) => ({
            time: c.time,
            value: c.volume,
            color: c.close >= c.open ? `${UP}80` : `${DOWN}80`,
          })),
        );
        last = data.at(-1)?.time ?? 0;
        bars = data.length;
        setCount(bars);
        setError(null);
        s.chart.timeScale().scrollToRealTime();
      } catch (e) {
        if (!stopped) setError((e as Error).message);
      }
    }
    const unsubscribe = stream.subscribe(`kline.${interval}.${m.symbol}`, (k: KlineFrame) => {
      put(candle(utcSeconds(k.t), k));
    });
    const unhook = stream.onReconnect(() => void load());
    void load();
    return () => {
      stopped = true;
      unsubscribe();
      unhook();
    };
  }, [m.symbol, interval]);

  return (
    <div class="chart">
      <div class="toolbar" role="group" aria-label="Chart interval">
        {INTERVALS.map((name) => (
          <button
            key={name}
            class={name === interval ? "chip active" : "chip"}
            aria-pressed={name === interval}
            onClick={() => setInterval(name)}
          >
            {name}
          </button>
        ))}
        <span class="muted hint">UTC</span>
      </div>
      {error && <p class="error small">Chart: {error}</p>}
      <div ref={box} class="chart-box" data-testid="chart" data-interval={interval} data-candles={count} />
    </div>
  );
}

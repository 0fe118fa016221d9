import { useStore } from "../lib/store";
import { stream } from "../lib/stream";

const LABELS = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…" };

/** The WebSocket's state, so a person knows whether what they see is current. */
export function StatusPill() {
  const status = useStore(stream.status);
  return (
    <span class={`status ${status}`} data-testid="connection" role="status" aria-live="polite">
      <span class="dot" aria-hidden="true" />
      {LABELS[status]}
    </span>
  );
}

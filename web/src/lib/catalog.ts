/** The exchange's markets, assets and UI settings, loaded once per page load. */

import * as api from "./api";
import { Store } from "./store";

export interface Catalog {
  markets: api.Market[];
  decimals: Record<string, number>; // per asset
  networks: Record<string, api.Token[]>; // per asset, the networks it moves on
  config: api.UiConfig;
  error: string | null;
  loaded: boolean;
}

export const catalog = new Store<Catalog>({
  markets: [],
  decimals: {},
  networks: {},
  config: { faucet: false, faucetCap: "0" },
  error: null,
  loaded: false,
});

export async function loadCatalog(): Promise<void> {
  try {
    const [markets, assets, config] = await Promise.all([
      api.markets(),
      api.assets(),
      api.uiConfig().catch(() => ({ faucet: false, faucetCap: "0" })),
    ]);
    catalog.set({
      markets,
      decimals: Object.fromEntries(assets.map((a) => [a.symbol, a.decimals])),
      networks: Object.fromEntries(assets.map((a) => [a.symbol, a.tokens ?? []])),
      config,
      error: null,
      loaded: true,
    });
  } catch (error) {
    catalog.set({ ...catalog.get(), error: (error as Error).message, loaded: true });
    setTimeout(() => void loadCatalog(), 3000);
  }
}

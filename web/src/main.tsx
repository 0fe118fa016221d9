import { render } from "preact";
import { App } from "./App";
import { loadCatalog } from "./lib/catalog";
import "./styles.css";

void loadCatalog();
render(<App />, document.getElementById("app")!);

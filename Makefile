# The two commands of the README. Both install what is missing first (.ci/install-tools is idempotent).
.PHONY: run test test-rust test-e2e release

# Serve the console on http://127.0.0.1:3000 with the embedded SQLite default.
run:
	.ci/install-tools
	cargo leptos serve

# Every test: unit and integration tests (SQLite, and PostgreSQL when LATCHKEY_TEST_POSTGRES_URL is set),
# then the browser test against the cargo-leptos build.
test: 
	.ci/install-tools
	$(MAKE) test-rust
	$(MAKE) test-e2e

test-rust:
	cargo nextest run -p latchkey -p app --no-fail-fast

# The browser test and the API's check against its OpenAPI document (schemathesis) run against the production
# build, the one `make release` makes and people deploy.
test-e2e: release
	cd end2end && LATCHKEY_BIN=$(CURDIR)/target/release/latchkey node e2e.mjs
	LATCHKEY_BIN=$(CURDIR)/target/release/latchkey python3 end2end/api-schema.py

# The production build: server (optimized, stripped) and console (WASM size-optimized by wasm-opt), in
# target/release/latchkey and target/site. Prints the sizes; fails when the console WASM is over its budget.
release:
	.ci/install-tools
	cargo leptos build --release
	.ci/sizes --check

# The two commands of the README. Both install what is missing first (.ci/install-tools is idempotent).
.PHONY: run test test-rust test-e2e

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

test-e2e:
	cargo leptos build
	cd end2end && node e2e.mjs

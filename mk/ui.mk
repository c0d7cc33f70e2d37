# The web app's browser tests (tests/ui/): the real revwallet binary in Debian's headless Chromium, driven over
# CDP by playwright-core (never a downloaded browser), axe-core for accessibility, screenshots written to
# docs/screenshots/. The Rust in-process tests of the same pages run with `cargo test` (src/web/tests.rs).

UI_DIR         := tests/ui
# Copy of the lock file npm last installed from; a different lock file means `npm ci` again.
UI_INSTALLED   := $(UI_DIR)/node_modules/.installed-package-lock.json
# Node 18 is Debian 12's; playwright-core is pinned (tests/ui/package.json) to a release that still supports it.
UI_NODE_MAJOR  := 18

.PHONY: deps-ui ui-test

deps-ui: ## install chromium, chromium-driver, nodejs, npm (apt) and the pinned test packages (npm ci in tests/ui)
	@$(call apt_need,chromium,chromium)
	@$(call apt_need,chromedriver,chromium-driver)
	@$(call apt_need,node,nodejs)
	@$(call apt_need,npm,npm)
	@for tool in chromium chromedriver node npm; do \
		command -v $$tool >/dev/null 2>&1 || $(call fail,$$tool is still missing after installing); \
	done
	@node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= $(UI_NODE_MAJOR) ? 0 : 1)' \
		|| $(call fail,node $$(node --version) is too old; the browser tests need Node.js $(UI_NODE_MAJOR) or later)
	@# --ignore-scripts: no install hook runs (none is needed); PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: belt and braces.
	@cmp -s $(UI_DIR)/package-lock.json $(UI_INSTALLED) || { \
		cd $(UI_DIR) \
		&& PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
		&& cp package-lock.json node_modules/.installed-package-lock.json; } \
		|| $(call fail,npm ci in $(UI_DIR) failed (see above))

ui-test: ## browser tests of the web app in headless Chromium (journeys with and without JavaScript, keyboard, axe-core), writes docs/screenshots/
	@test -d $(UI_DIR)/node_modules/playwright-core -a -d $(UI_DIR)/node_modules/axe-core \
		|| $(call fail,the browser-test packages are not installed; run make deps-ui first)
	@cd $(UI_DIR) && node --test --test-reporter=spec wallet.test.mjs holds.test.mjs webhooks.test.mjs statement.test.mjs \
		|| $(call fail,the browser tests of the web app failed (see above; the server log is printed on start-up failures))
	@echo "ui-test: OK (screenshots in docs/screenshots/)"

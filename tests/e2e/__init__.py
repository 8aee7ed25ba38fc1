"""End-to-end walks through the Microsoft 365 Agents Playground in headless Chromium (opt-in: RUN_E2E=1)."""

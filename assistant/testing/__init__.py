"""Test doubles shared by the tests and the evals: real servers on loopback, no mocks.

`fake_openai` is a scripted HTTP server that speaks the OpenAI chat-completions API, so the
real `openai` client is exercised end to end. `streamlit_server` runs the chat page under a
real `streamlit run` (and talks to it over its websocket); `browser` drives it in Debian's
headless Chromium and runs axe-core. Nothing here is imported by the product.
"""

"""Test doubles shared by the tests and the evals: real servers on loopback, no mocks.

`fake_openai` is a scripted HTTP server that speaks the OpenAI chat-completions API, so the
real `openai` client is exercised end to end. Nothing here is imported by the product.
"""

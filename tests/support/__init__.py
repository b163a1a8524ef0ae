"""Real helpers for the tests: a llama.cpp server launcher, a fault-injecting proxy, an Anthropic adapter."""

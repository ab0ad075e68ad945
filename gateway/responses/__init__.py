"""`/v1/responses`: OpenAI's Responses API, stateless, served on the chat path."""

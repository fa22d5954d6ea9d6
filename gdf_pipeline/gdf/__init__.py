"""The GoDataFeed Order API: its names, a client, and the client's shared rate limiter."""

"""Answers: what comes back after a send (bounces, complaints, mailed unsubscribes), read and acted on."""

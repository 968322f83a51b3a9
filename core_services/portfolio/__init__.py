"""The portfolio service: quotes from a market simulator, orders settled through payments, positions."""

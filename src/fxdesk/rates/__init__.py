"""Exchange rates: the Bank of Russia feed, storage and conversion."""

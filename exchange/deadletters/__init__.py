"""Dead letters: documents the exchange could not deliver, listed for the secretariat to re-queue or close."""

"""Cases: reports received from abroad for content hosted here, and every case's status history."""

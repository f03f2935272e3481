"""Police referrals: cases handed to the national police as a signed JSON export and a CSV."""

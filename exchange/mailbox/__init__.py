"""The exchange's mailbox endpoints, for members that collect their documents instead of receiving pushes."""

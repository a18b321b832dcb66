"""The one exception type for errors a user can cause and fix."""


class LstmlabError(Exception):
    """A bad config value, bad data, an unknown run: printed as one line by the command line."""

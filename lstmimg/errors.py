"""The one error type lstmimg raises for problems a person can fix."""


class LstmimgError(Exception):
    """A problem with the user's input (a path, a file, an option), with a message fit for a person.

    The CLI prints it as one line and exits with code 1; library users catch it like any exception.
    """


def article(word: object) -> str:
    """'an' before a vowel, else 'a': for messages such as "an image model"."""
    return "an" if str(word)[:1] in "aeiou" else "a"

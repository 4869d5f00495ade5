"""Domain errors of the accounts app; codes are API (add, never rename)."""

from __future__ import annotations

from cortex import errors


class InvalidCredentials(errors.NotAuthenticated):
    code = "invalid_credentials"
    default_message = "The email or password is not correct."


class PasswordLoginDisabled(errors.PermissionDenied):
    code = "password_login_disabled"
    default_message = "Password sign-in is turned off on this hub."


class FieldNotWritable(errors.ValidationFailed):
    code = "field_not_writable"
    default_message = "Some fields cannot be changed here."


class EmailTaken(errors.Conflict):
    code = "email_taken"
    default_message = "A user with this email exists already."


class GroupNameTaken(errors.Conflict):
    code = "group_name_taken"
    default_message = "A group with this name exists already."


class CannotDeactivateSelf(errors.ValidationFailed):
    code = "cannot_deactivate_self"
    default_message = "You cannot deactivate your own account."


class OidcUserRefused(errors.PermissionDenied):
    """The provider vouched for someone this hub will not sign in; the message is the reason."""

    code = "oidc_user_refused"
    default_message = "refused"


class WrongPassword(errors.ValidationFailed):
    code = "wrong_password"
    default_message = "The current password is not correct."

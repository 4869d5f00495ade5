"""Who you are: users, groups, sign-in (password and OIDC), API tokens, and the audit log."""

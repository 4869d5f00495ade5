"""Routes of the web consoles, included at /console/."""

from __future__ import annotations

from django.urls import path

from console import views

app_name = "console"

urlpatterns = [
    path("", views.nodes_page, name="nodes"),
    path("login/", views.login_page, name="login"),
    path("nodes/<slug:node_id>/", views.node_page, name="node"),
    path("sessions/", views.sessions_page, name="sessions"),
    path("sessions/<int:session_id>/", views.session_page, name="session"),
    path("agents/", views.agents_page, name="agents"),
    path("settings/", views.settings_page, name="settings"),
    path("admin/", views.admin_page, name="admin"),
]

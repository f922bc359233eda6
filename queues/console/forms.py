"""Console forms for a queue's settings (list filters are ``queues.filters``)."""

from __future__ import annotations

from django import forms

from ..models import Queue


class QueueSettingsForm(forms.ModelForm):
    class Meta:
        model = Queue
        fields = ["concurrency", "rate_limit", "max_attempts", "timeout", "retention", "encrypt"]


class QueueCreateForm(forms.ModelForm):
    class Meta:
        model = Queue
        fields = ["name", "concurrency", "rate_limit", "max_attempts", "timeout", "encrypt"]

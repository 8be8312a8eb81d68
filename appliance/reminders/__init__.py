"""Premium reminders (MISSION R11): the box finds the policies whose premium is due soon or
overdue and calls their holders with a personal message in their language, tries again
after busy, no answer or congestion, and logs every attempt with its outcome. Settings in
:mod:`~appliance.reminders.settings`, who is called in
:mod:`~appliance.reminders.selection`, the attempt log in
:mod:`~appliance.reminders.attempts`, the calls in :mod:`~appliance.reminders.dialer`."""

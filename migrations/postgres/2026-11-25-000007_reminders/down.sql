DROP TABLE renewal_reminders;

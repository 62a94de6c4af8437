DROP TABLE billing_profiles;

DROP TABLE commissions;
DROP TABLE bookings;
DROP TABLE units;
DROP TABLE projects;

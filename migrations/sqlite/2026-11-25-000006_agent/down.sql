DROP TABLE agent_challenges;

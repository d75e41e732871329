DROP TABLE portal_drafts;

// Egress section of the configuration (see gateway/config/schema.ts for conventions).
import { Type, type Static } from '@sinclair/typebox';

export const EgressSchema = Type.Object({}, { additionalProperties: false });

export type EgressConfig = Static<typeof EgressSchema>;

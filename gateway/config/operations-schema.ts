// Operations sections of the configuration: admin plane, Redis, rate limits (issue #5).
import { Type, type Static } from '@sinclair/typebox';

export const AdminSchema = Type.Object({}, { additionalProperties: false });
export const RedisSchema = Type.Object({}, { additionalProperties: false });
export const RateLimitSchema = Type.Object({}, { additionalProperties: false });

export type AdminConfig = Static<typeof AdminSchema>;
export type RedisConfig = Static<typeof RedisSchema>;
export type RateLimitConfig = Static<typeof RateLimitSchema>;

/**
 * An API base URL as the client uses it, whether configured or learned from a join answer: http(s),
 * without query or fragment (request paths are appended to it), and spelled one way (no trailing
 * slash) so "sticks to the URL that worked" and the fallback chain's de-duplication compare like with
 * like.
 */
import { z } from 'zod';

export const baseUrlSchema = z
  .string()
  .refine(
    (u) => {
      try {
        const url = new URL(u);
        return (url.protocol === 'http:' || url.protocol === 'https:') && !url.search && !url.hash;
      } catch {
        return false;
      }
    },
    { message: 'must be an http(s) base URL such as "https://api.example.com", without query or fragment' },
  )
  .transform((u) => u.replace(/\/+$/, ''));

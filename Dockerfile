FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY bin ./bin
COPY src ./src
COPY workers ./workers
ENV HOST=0.0.0.0 NODE_ENV=production
EXPOSE 8283
ENTRYPOINT ["node", "bin/runhook.js"]
CMD ["all"]
